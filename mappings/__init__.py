"""The default mappings, shipped with the connector: ``salesforce.yaml`` (Salesforce records
to customers, contracts and subscriptions), ``accounting.yaml`` (the chart of accounts) and
``usage.yaml`` (billable metrics and metered prices).
Copy one, edit it, and point ``salesforce.mapping_file``, ``accounting.mapping_file`` or
``usage.mapping_file`` at it."""
