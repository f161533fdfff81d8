"""Collects every router; nothing else."""

from fastapi import APIRouter

from app.api.routes import auth, pages

router = APIRouter()
router.include_router(auth.router)
router.include_router(pages.router)
