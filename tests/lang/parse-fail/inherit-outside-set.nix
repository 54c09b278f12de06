# inherit at top level
inherit a;
