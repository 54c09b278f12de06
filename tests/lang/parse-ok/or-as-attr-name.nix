# or used as attribute name and in paths
{ or = 1; a.or.b = 2; c = { or = 3; }.or; d = x: x.or or x.or; }
