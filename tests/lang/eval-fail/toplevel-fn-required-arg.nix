# a top-level function with a required formal cannot be auto-called
{ env }: { inherit env; }
