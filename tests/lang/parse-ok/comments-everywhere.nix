# comments between all tokens
/* a */ let /* b */ x /* c */ = /* d */ 1 /* e */ ; # f
in /* g */ { /* h */ y = # i
  x /**/ + /* j */ x; } /* k */ . /* l */ y
