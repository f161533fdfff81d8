"""Collects every router; nothing else."""

from fastapi import APIRouter

from app.api.routes import auth, datasets, launch, me, pages, runs, samples, stats, tokens, uploads, users

router = APIRouter()
router.include_router(auth.router)
router.include_router(pages.router)
for _shell in (users.router, tokens.router, me.router):  # helper D's routers
    router.include_router(_shell)
router.include_router(uploads.router)  # helper B: before datasets, so /datasets/upload wins
router.include_router(datasets.router)  # helper B
for _c in (samples.router, stats.router):  # helper C's routers
    router.include_router(_c)
router.include_router(launch.router)  # before runs, so /runs/new is not read as a run id
router.include_router(runs.router)
