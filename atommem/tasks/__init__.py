"""Task families: seeded generators of long-context episodes, the bAbI-format reader, haystacks and scoring."""
