"""Work orders as pure domain logic: lifecycle, timeline, intake rules. No I/O here."""
