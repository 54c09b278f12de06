# a top-level function with all-default formals is auto-called
{ env ? "staging" }: { inherit env; }
