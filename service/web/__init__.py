"""HTTP: the Litestar app, its routes, and the mapping of errors to problem details."""
