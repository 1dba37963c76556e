"""The DishLens JSON API (FastAPI); run it with ``uvicorn api.main:app``."""
