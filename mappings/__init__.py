"""The default mappings, shipped with the connector: ``salesforce.yaml`` (Salesforce records
to customers, contracts and subscriptions) and ``accounting.yaml`` (the chart of accounts).
Copy one, edit it, and point ``salesforce.mapping_file`` or ``accounting.mapping_file`` at it."""
