"""``S3THUMBS_RULES``: which sizes apply to a key, by the longest matching key prefix.

``PREFIX=SIZES;PREFIX=SIZES…``, SIZES in the grammar of ``S3THUMBS_SIZES``; an empty SIZES means no
thumbnails under that prefix. A key no rule matches gets ``S3THUMBS_SIZES``.
"""

from __future__ import annotations

from dataclasses import dataclass

from s3thumbs.keys import Size, parse_sizes


@dataclass(frozen=True)
class SizeRules:
    """The default sizes, and the sizes of each prefix (longest first)."""

    default: tuple[Size, ...]
    rules: tuple[tuple[str, tuple[Size, ...]], ...] = ()

    def sizes_for(self, key: str) -> tuple[Size, ...]:
        """The sizes for ``key``: those of its longest matching prefix, else the default; () for none."""
        for prefix, sizes in self.rules:
            if key.startswith(prefix):
                return sizes
        return self.default

    def all_sizes(self) -> tuple[Size, ...]:
        """Every size some key may get, each once."""
        found: list[Size] = []
        for sizes in (self.default, *(sizes for _, sizes in self.rules)):
            found += [size for size in sizes if size not in found]
        return tuple(found)


def parse_rules(text: str) -> tuple[tuple[str, tuple[Size, ...]], ...]:
    """Parse ``"avatars/=64x64:cover;raw/="``: longest prefix first; a prefix given twice is an error."""
    rules: dict[str, tuple[Size, ...]] = {}
    for part in text.split(";"):
        if not part.strip():
            continue
        prefix, equals, sizes = part.rpartition("=")
        prefix = prefix.strip()
        if not equals:
            raise ValueError(f"{part.strip()!r} is not PREFIX=SIZES (e.g. avatars/=64x64:cover)")
        if prefix in rules:
            raise ValueError(f"the prefix {prefix!r} is given twice")
        rules[prefix] = parse_sizes(sizes) if sizes.strip() else ()
    return tuple(sorted(rules.items(), key=lambda rule: -len(rule[0])))
