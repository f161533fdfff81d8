"""Collects every router; nothing else."""

from fastapi import APIRouter

from app.api.routes import (
    auth,
    datasets,
    jobs,
    judges,
    launch,
    me,
    pages,
    problems,
    rate,
    rate_pages,
    rating,
    rating_results,
    runs,
    samples,
    sampling,
    sampling_launch,
    stats,
    tokens,
    uploads,
    users,
)

router = APIRouter()
router.include_router(auth.router)
router.include_router(pages.router)
for _accounts in (users.router, tokens.router, me.router):
    router.include_router(_accounts)
router.include_router(uploads.router)  # before datasets, so /datasets/upload is not read as a dataset id
router.include_router(datasets.router)
for _samples in (samples.router, stats.router):
    router.include_router(_samples)
router.include_router(launch.router)  # before runs, so /runs/new is not read as a run id
router.include_router(runs.router)
router.include_router(sampling_launch.router)  # before sampling, so /sampling/new is not read as an id
router.include_router(sampling.router)
for _rating in (rating.router, rating_results.router, rate.router, rate_pages.router, judges.router):
    router.include_router(_rating)
router.include_router(problems.router)
router.include_router(jobs.router)
