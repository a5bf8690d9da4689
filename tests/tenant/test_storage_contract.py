"""Our SQLite-backed storage keeps every rule of scim2-server's storage contract."""

from __future__ import annotations

from pathlib import Path

import pytest
from scim2_models import ScimProvider
from scim2_server.testing import ScimStorageContract

from reconciler.tenant.settings import TenantSettings
from reconciler.tenant.storage import PersistentStorage


class TestPersistentStorage(ScimStorageContract):
    @pytest.fixture
    def storage(self, tmp_path: Path, provider: ScimProvider) -> PersistentStorage:
        return PersistentStorage(tmp_path / "t.db", provider, TenantSettings())
