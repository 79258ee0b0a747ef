"""Running one build through a builder in a test: its (phase, message) events and its failure."""

from binderspawner.errors import BuildFailed


async def build_events(builder, request):
    """``builder.build(request)`` -> (events, the BuildFailed it raised or None)."""
    events = []
    try:
        await builder.build(request, lambda phase, message, *rest: events.append((phase, message)))
    except BuildFailed as error:
        return events, error
    return events, None
