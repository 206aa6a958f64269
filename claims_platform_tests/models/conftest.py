"""A small labelled window and one model trained on it (see claims_platform_tests.trained_model)."""

from claims_platform_tests.trained_model import parts, trained, window  # noqa: F401
