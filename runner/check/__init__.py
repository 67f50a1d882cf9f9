"""The check wing: every check of a spec before anything is sent.
The published JSON Schema, templates, cases, refs, request rules, images and expectations.
"""
