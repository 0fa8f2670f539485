"""The HTTP room: the Starlette app, its routes, authentication and wire rendering."""
