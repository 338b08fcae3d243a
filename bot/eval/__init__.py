"""The eval harness: score answers on a question set, gate on a baseline, report.

- :mod:`bot.eval.dataset`: the question and topic sets (pydantic rows, one problem per bad line)
- :mod:`bot.eval.results`: the typed records a run writes to ``results.json``
- :mod:`bot.eval.metrics`: retrieval and answer metrics, per-question scoring, group aggregates
- :mod:`bot.eval.judge`: the LLM judge
- :mod:`bot.eval.baseline`: the regression gate
- :mod:`bot.eval.report`: the Markdown report, console tables and the chart
- :mod:`bot.eval.run`: running the engine over a set, and `paperbot eval`
"""

from bot.eval.dataset import DatasetError, EvalError
from bot.eval.run import DEFAULT_DATASET, run_command

__all__ = ["DEFAULT_DATASET", "DatasetError", "EvalError", "run_command"]
