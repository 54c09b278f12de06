# with without ;
with { }: 1
