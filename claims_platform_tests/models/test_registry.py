"""The registered model is created once, whichever of two concurrent trainings gets there first."""

from __future__ import annotations

from mlflow.exceptions import MlflowException
from mlflow.protos.databricks_pb2 import RESOURCE_ALREADY_EXISTS, RESOURCE_DOES_NOT_EXIST

from claims_platform.models.registry import MODEL_DESCRIPTION, ModelRegistry


class _RacingClient:
    """A registry where another run creates the model between our lookup and our creation."""

    def __init__(self, description: str | None):
        self.created_by_other = False
        self.description = description
        self.updated: list[str] = []

    def get_registered_model(self, name):
        if not self.created_by_other:
            self.created_by_other = True  # the other run creates it right after this lookup
            raise MlflowException("not found", error_code=RESOURCE_DOES_NOT_EXIST)
        return type("Model", (), {"description": self.description})()

    def create_registered_model(self, name, description=None):
        raise MlflowException(
            f"Registered Model (name={name}) already exists.", error_code=RESOURCE_ALREADY_EXISTS
        )

    def update_registered_model(self, name, description=None):
        self.updated.append(description)


def test_a_model_created_meanwhile_by_another_run_is_taken_as_it_is(monkeypatch):
    for description, updated in ((None, [MODEL_DESCRIPTION]), ("already described", [])):
        client = _RacingClient(description)
        registry = ModelRegistry(tracking_uri="sqlite:///unused.db")
        monkeypatch.setattr(ModelRegistry, "client", lambda self, c=client: c)
        registry.ensure_registered_model()  # no error: the model exists, whoever made it
        assert client.updated == updated
