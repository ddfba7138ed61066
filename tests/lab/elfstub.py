"""Minimal x86-64 ELF shared objects with a SONAME, for stub packages' libraries.

ldconfig indexes only real ELF shared objects, and the probe reads `ldconfig -p`; a stub
libcuda.so.535.183.01 must therefore be an ELF file whose dynamic section names its SONAME.
It holds no code: nothing in the lab ever loads it.
"""

from __future__ import annotations

import struct

PT_LOAD, PT_DYNAMIC = 1, 2
DT_NULL, DT_STRTAB, DT_SYMTAB, DT_STRSZ, DT_SYMENT, DT_SONAME = 0, 5, 6, 10, 11, 14


def elf_shared_object(soname: str) -> bytes:
    ehdr_size, phdr_size = 64, 56
    strtab = b"\0" + soname.encode() + b"\0"
    str_off = ehdr_size + 2 * phdr_size
    sym_off = (str_off + len(strtab) + 7) & ~7
    symtab = b"\0" * 24
    dyn_off = sym_off + len(symtab)
    dyn = [
        (DT_SONAME, 1), (DT_STRTAB, str_off), (DT_SYMTAB, sym_off),
        (DT_STRSZ, len(strtab)), (DT_SYMENT, 24), (DT_NULL, 0),
    ]
    dynamic = b"".join(struct.pack("<qQ", tag, val) for tag, val in dyn)
    total = dyn_off + len(dynamic)
    ident = b"\x7fELF" + bytes([2, 1, 1, 0]) + b"\0" * 8
    ehdr = ident + struct.pack(
        "<HHIQQQIHHHHHH", 3, 62, 1, 0, ehdr_size, 0, 0, ehdr_size, phdr_size, 2, 64, 0, 0
    )
    load = struct.pack("<IIQQQQQQ", PT_LOAD, 4, 0, 0, 0, total, total, 0x1000)
    dynph = struct.pack("<IIQQQQQQ", PT_DYNAMIC, 4, dyn_off, dyn_off, dyn_off,
                        len(dynamic), len(dynamic), 8)
    body = ehdr + load + dynph + strtab
    body += b"\0" * (sym_off - len(body)) + symtab + dynamic
    return body
