"""The pure core: what a DurableTopic means and what should happen to its topic.

Nothing here does I/O or imports anything outside the standard library and pydantic: the loop,
the adapters, the tools and the commands build on it, never the other way round.
"""
