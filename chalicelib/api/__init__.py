"""The HTTP edge: validation, the contract's error shape, and the JSON shape of each resource."""
