"""Mapping files written beside the demo world: how its call-centre export is read, and the
value maps that fix the refusals its files are made with (see ``surmesure demo``)."""
