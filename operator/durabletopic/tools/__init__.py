"""Tools the commands use: manifest reading, the API server's schema checks, validation, plan views,
generated files and the durability probe. They build on the core and the adapters."""
