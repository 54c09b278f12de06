# keywords like if cannot be bare attribute names
{ if = 1; }
