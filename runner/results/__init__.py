"""The results wing: finished runs read back for people.
Re-scoring, comparing two runs, tables and exports, HTML and Markdown reports.
"""
