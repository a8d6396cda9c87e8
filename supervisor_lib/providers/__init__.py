"""One module per AI provider: the hook (connection → clients), request/response mapping and error mapping.

Only the hooks read connections. Provider SDKs are imported inside the hooks' methods, never at module level,
so DAG files that use the operators do not pay for importing the SDKs at parse time.
"""
