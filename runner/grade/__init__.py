"""The grade wing: what an answer means.
The completion checked against the spec's structured output and tools, expectations, scores.
"""
