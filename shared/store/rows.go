package store

import "database/sql"

// Strings reads a query's result of one text column (ids, mostly) and
// closes it. It takes QueryContext's two results as they are:
//
//	ids, err := store.Strings(db.QueryContext(ctx, `SELECT id FROM …`, args...))
func Strings(rows *sql.Rows, err error) ([]string, error) {
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, rows.Err()
}
