"""Everything deployed beside app.py: rules, storage, services, payments, auth and HTTP shaping."""
