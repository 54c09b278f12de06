# a name not bound statically nor by with fails at eval time
with { a = 1; }; b
