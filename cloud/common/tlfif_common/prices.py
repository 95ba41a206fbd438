"""Reads THE price table, `prices.json` next to this module (package data: it ships in the Lambda zip, the GPU image
and the app). Users: the router's GET /cost (GPU hourly price), `tl-fif cost estimate`, the app (OpenAI tokens).

    table = prices.load()
    table.aws("ec2.g4dn.xlarge", "eu-central-1").usd      # 0.658, with .date, .source, .text, .basis
    table.ec2_hourly_usd("g4dn.xlarge", "eu-central-1")
    prices.usd_to_eur()                                   # TLFIF_USD_TO_EUR if set, else the table's rate
    table.openai_cost_usd("gpt-4o-mini-2024-07-18", prompt_tokens=1200, completion_tokens=300)

An AWS price is looked up for a region, falling back to the "global" entry for services billed once per account
(Cost Explorer, Config); a region the table does not have raises `UnknownRegion` naming the regions it has.
"""
from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from typing import Any, Mapping

from . import names

GLOBAL = "global"
PRICE_FILE = "prices.json"
_DATED_SUFFIX = re.compile(r"-\d{4}-\d{2}-\d{2}$")


class PriceError(LookupError):
    """A price the table does not have; the message says which and what the table has instead."""


class UnknownRegion(PriceError):
    pass


@dataclass(frozen=True)
class Price:
    key: str
    region: str
    usd: float
    unit: str
    date: str
    source: str
    text: str
    basis: str


@dataclass(frozen=True)
class TokenPrice:
    model: str
    input: float  # USD per 1M tokens
    cached_input: float
    output: float

    def cost_usd(self, prompt_tokens: int, completion_tokens: int, cached_tokens: int = 0) -> float:
        """`prompt_tokens` as the API reports it, cached ones included (`prompt_tokens_details.cached_tokens`)."""
        cached = max(0, min(int(cached_tokens), int(prompt_tokens)))
        fresh = int(prompt_tokens) - cached
        return (fresh * self.input + cached * self.cached_input + int(completion_tokens) * self.output) / 1e6


class PriceTable:
    def __init__(self, data: Mapping[str, Any]):
        self.data = data
        self.compiled: str = data["compiled"]
        self.hours_per_month: float = float(data["hours_per_month"])
        self.table_usd_to_eur: float = float(data["usd_to_eur"]["value"])
        self._aws: Mapping[str, Any] = data["aws"]
        self._openai: Mapping[str, Any] = data["openai"]

    @property
    def regions(self) -> list[str]:
        """The regions every regional AWS price is given for."""
        found: set[str] | None = None
        for item in self._aws.values():
            regional = set(item["regions"]) - {GLOBAL}
            if regional:
                found = regional if found is None else found & regional
        return sorted(found or ())

    def check_region(self, region: str) -> None:
        if region not in self.regions:
            raise UnknownRegion(f"no prices for region {region!r}; the price table has: {', '.join(self.regions)}")

    def aws(self, key: str, region: str) -> Price:
        item = self._aws.get(key)
        if item is None:
            raise PriceError(f"no AWS price {key!r} in {PRICE_FILE}")
        entry = item["regions"].get(region)
        where = region
        if entry is None and GLOBAL in item["regions"]:
            entry, where = item["regions"][GLOBAL], GLOBAL
        if entry is None:
            self.check_region(region)
            raise UnknownRegion(f"no price {key!r} for region {region!r} in {PRICE_FILE}")
        return Price(key=key, region=where, usd=float(entry["usd"]), unit=item["unit"], date=entry["date"],
                     source=item["source"], text=entry["text"], basis=entry["basis"])

    def usd(self, key: str, region: str) -> float:
        return self.aws(key, region).usd

    def ec2_hourly_usd(self, instance_type: str, region: str) -> float:
        return self.usd(f"ec2.{instance_type}", region)

    def openai_price(self, model: str) -> TokenPrice | None:
        """The price of `model` (a dated id falls back to its alias); None when the table does not know it."""
        models = self._openai["models"]
        name = (model or "").strip().lower()
        for candidate in (name, _DATED_SUFFIX.sub("", name)):
            entry = models.get(candidate)
            if entry is not None:
                return TokenPrice(model=candidate, input=float(entry["input"]),
                                  cached_input=float(entry.get("cached_input", entry["input"])),
                                  output=float(entry["output"]))
        return None

    def openai_cost_usd(self, model: str, *, prompt_tokens: int, completion_tokens: int,
                        cached_tokens: int = 0) -> float | None:
        price = self.openai_price(model)
        return None if price is None else price.cost_usd(prompt_tokens, completion_tokens, cached_tokens)

    @property
    def openai_source(self) -> str:
        return f"{self._openai['source']} ({self._openai['date']})"


@lru_cache(maxsize=1)
def load() -> PriceTable:
    """The packaged table, parsed once per process."""
    text = resources.files(__package__).joinpath(PRICE_FILE).read_text(encoding="utf-8")
    return PriceTable(json.loads(text))


def usd_to_eur(environ: Mapping[str, str] | None = None, table: PriceTable | None = None) -> float:
    """EUR per USD: the environment variable TLFIF_USD_TO_EUR when set, else the table's rate.

    A value that is not a positive number raises ValueError naming the variable (a wrong rate would silently
    misstate every euro figure, so it must not be ignored).
    """
    env = os.environ if environ is None else environ
    raw = (env.get(names.ENV_USD_TO_EUR) or "").strip()
    if not raw:
        return (table or load()).table_usd_to_eur
    try:
        rate = float(raw)
    except ValueError:
        raise ValueError(f"{names.ENV_USD_TO_EUR} must be a number (EUR per USD), got {raw!r}") from None
    if not 0 < rate < 10:
        raise ValueError(f"{names.ENV_USD_TO_EUR} must be EUR per USD (e.g. 0.86), got {raw!r}")
    return rate
