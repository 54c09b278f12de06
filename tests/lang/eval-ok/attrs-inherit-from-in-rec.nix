# inherit (e) inside rec where e refers to a rec attribute
rec { base = { p = 1; q = 2; }; inherit (base) p q; r = p + q; }
