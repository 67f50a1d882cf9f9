"""The providers wing: where requests go and with which key.
Built-in endpoints and the keys bound to them; what is known about each provider.
"""
