"""PostgreSQL persistence: models, engines and the data functions on scans."""
