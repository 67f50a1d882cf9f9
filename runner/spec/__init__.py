"""The spec wing: spec files read into typed objects and rendered into request bodies.
Loading YAML with positions, hints, extends, variables, cases and matrix, the project folder,
the template sandbox, rendering, local images and the `runner init` scaffold.
"""
