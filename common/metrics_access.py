"""Who may read ``/metrics``: the settings section both programs share, and its guard."""

from __future__ import annotations

from collections.abc import Callable

from pydantic import BaseModel, ConfigDict, Field, SecretStr, model_validator

from common.settings import check_token


class MetricsSettings(BaseModel):
    """The ``metrics`` section: on or off, public or behind a scrape token."""

    model_config = ConfigDict(extra="forbid")

    enabled: bool = Field(
        default=True, description="Serve GET /metrics; false answers 404 (prometheus_enabled)."
    )
    public: bool = Field(
        default=False,
        description="Serve /metrics without a token (a trusted network only: it names every "
        "node and its state).",
    )
    token: SecretStr | None = Field(
        default=None,
        description="A scrape token for Prometheus, accepted on /metrics only (the program's "
        "own token works too). Keeps the operator or API token out of Prometheus.",
    )

    @model_validator(mode="after")
    def _strong(self) -> MetricsSettings:
        check_token("metrics.token", self.token)
        return self


def scrape_tokens(
    metrics: MetricsSettings, own: Callable[[], list[str]]
) -> Callable[[], list[str]] | None:
    """The tokens ``/metrics`` accepts (``own`` plus the scrape token); None when public.

    A disabled endpoint is public too: the route is not mounted, so anyone gets the 404
    that ``prometheus_enabled = false`` promises instead of a 401 that hides it.
    """
    if metrics.public or not metrics.enabled:
        return None
    scrape = metrics.token

    def tokens() -> list[str]:
        extra = [scrape.get_secret_value()] if scrape is not None else []
        return [*own(), *extra]

    return tokens
