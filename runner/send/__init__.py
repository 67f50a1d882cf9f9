"""The send wing: one request out, one answer back.
HTTP transport, retries, rate limits, streams, the offline provider and the Batch API client.
"""
