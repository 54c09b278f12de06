# dollar escapes: \$, \${, $${ and lone dollars
[ "\$" "\${x}" "$${x}" "$$" "$" "a$" "$a" "$$$" ]
