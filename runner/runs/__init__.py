"""The runs wing: a plan executed and saved.
Execution, records, the run store and finding runs by name, the response cache, cassettes,
progress, failures and Batch runs.
"""
