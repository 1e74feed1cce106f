"""HTTP transport: thin Litestar controllers over the domain services."""
