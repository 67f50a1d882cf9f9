"""runner: declarative YAML specs for LLM chat-completion requests.

The public Python API is what ``__all__`` lists (see "Use from Python" in README.md); every
other module of the package is private and may change without notice.
"""

from runner.api import (
    API_VERSION,
    Check,
    Record,
    RenderedRequest,
    Run,
    RunOptions,
    ToolCall,
    Verdict,
    diff_runs,
    iter_diff,
    load_specs,
    open_run,
    plan_specs,
    record_rows,
    render_spec,
    resume_run,
    resume_submit,
    run_specs,
    submit_specs,
    validate_specs,
)
from runner.errors import (
    Problem,
    RenderError,
    RunInterrupted,
    RunnerError,
    RunnerWarning,
    RunRefused,
    SpecError,
    UsageError,
)
from runner.version import __version__

__all__ = [
    "API_VERSION",
    "Check",
    "Problem",
    "Record",
    "RenderError",
    "RenderedRequest",
    "Run",
    "RunInterrupted",
    "RunOptions",
    "RunRefused",
    "RunnerError",
    "RunnerWarning",
    "SpecError",
    "ToolCall",
    "UsageError",
    "Verdict",
    "__version__",
    "diff_runs",
    "iter_diff",
    "load_specs",
    "open_run",
    "plan_specs",
    "record_rows",
    "render_spec",
    "resume_run",
    "resume_submit",
    "run_specs",
    "submit_specs",
    "validate_specs",
]
