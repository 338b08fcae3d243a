"""Literature summaries: the papers really about a topic, grouped into themes, every claim cited.

``summarize(engine, topic)`` gathers candidates (hybrid search plus a scan of
every paper's dense and BM25 match), keeps those a fitted relevance rule calls
on-topic, clusters them into a few themes, and writes one paragraph per theme:
each paper's own key-claim sentence with an [n] marker (extractive mode), or a
synthesis the LLM writes from those claims with its markers verified (LLM
mode). Papers are numbered in the order of their lines (themes by relevance, papers by
relevance within a theme); the reference list follows.
"""

from bot.summarize.claims import claim_rule_accuracy
from bot.summarize.measure import summary_recall
from bot.summarize.pipeline import summarize
from bot.summarize.select import Candidate, relevance, select_papers
from bot.summarize.types import NO_COVERAGE, Reference, Summary, Theme

__all__ = [
    "NO_COVERAGE",
    "Candidate",
    "Reference",
    "Summary",
    "Theme",
    "claim_rule_accuracy",
    "relevance",
    "select_papers",
    "summarize",
    "summary_recall",
]
