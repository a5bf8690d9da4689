"""What differs between tenants, by profile. Facts from vendor documentation (VENDORS.md).

| profile | page | members/PATCH | rate | groups | listing | users deleted | stale |
|---|---|---|---|---|---|---|---|
| generic | 1000 | 1000 | 50/s | any | all | yes | 412 |
| goto | 100 | 100 | 10/s | any | all | no, suspended | 412 |
| genesys | 100 | 100 | 5/s | update only | active only | soft delete | 400 |
"""

from __future__ import annotations

from dataclasses import dataclass

from reconciler.desired.models import Profile


@dataclass(frozen=True)
class ProfileFacts:
    page_size: int
    member_chunk: int
    rate_limit: float  # requests per second
    concurrency: int
    can_create_groups: bool = True
    can_delete_groups: bool = True
    can_delete_users: bool = True
    active_only_listing: bool = False
    stale_status: tuple[int, ...] = (412,)


PROFILES: dict[Profile, ProfileFacts] = {
    Profile.generic: ProfileFacts(page_size=1000, member_chunk=1000, rate_limit=50, concurrency=8),
    Profile.goto: ProfileFacts(
        page_size=100, member_chunk=100, rate_limit=10, concurrency=4, can_delete_users=False
    ),
    Profile.genesys: ProfileFacts(
        page_size=100,
        member_chunk=100,
        rate_limit=5,
        concurrency=4,
        can_create_groups=False,
        can_delete_groups=False,
        active_only_listing=True,
        stale_status=(412, 400),
    ),
}


def facts(profile: Profile) -> ProfileFacts:
    return PROFILES[profile]
