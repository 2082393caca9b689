"""The unit registry as plain data, for the pure attribution stage.

Built from the database (config units plus addresses staff confirmed) by the store; nothing here does I/O.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class RegistryUnit:
    name: str
    category: str
    aliases: tuple[str, ...] = ()
    addresses: frozenset[str] = frozenset()  # lower-case
    contact: str = ""
    phone: str = ""


@dataclass(frozen=True)
class Registry:
    units: tuple[RegistryUnit, ...]
    # Addresses staff rejected (`units reject`): their mail is never attributed by content again.
    rejected_addresses: frozenset[str] = frozenset()
    # Names of the receiving organisation, removed from text before matching (see StaffConfig).
    addressee_names: tuple[str, ...] = ()
    # mailbot's own addresses: their mail is never a report and never answered.
    own_addresses: frozenset[str] = frozenset()
    _by_address: dict[str, RegistryUnit] = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self) -> None:
        for unit in self.units:
            for address in unit.addresses:
                self._by_address[address.lower()] = unit

    def unit_for_address(self, address: str) -> RegistryUnit | None:
        return self._by_address.get(address.strip().lower())

    def by_name(self, name: str) -> RegistryUnit | None:
        return next((u for u in self.units if u.name == name), None)
