import type { Login } from '../../shared/databases/types.js';

/** A MySQL login of the unit tests (scripted drivers): its password needs escaping. */
export const mysqlLogin = {
  host: 'db.internal',
  port: 3306,
  user: 'app',
  password: "s3cret-'Pa55",
  database: '',
  tls: 'disable' as const,
} satisfies Login;

/** A DocumentDB login of the unit tests (no server behind it). */
export const mongoLogin: Login = {
  host: 'orders.cluster-abc.us-east-1.docdb.amazonaws.com',
  port: 27017,
  user: 'app',
  password: 's3cret-Pa55',
  database: 'admin',
  tls: 'verify',
};
