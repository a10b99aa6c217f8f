"""CRM-integrated billing connector: Salesforce deals in, invoices and revenue out."""

__version__ = "0.1.0"
