"""Pure format logic: VHD footer and geometry, size rules, partition tables, zero detection.

No I/O and no asyncio here: every function takes bytes or numbers and returns values.
"""
