// The one grpc-web transport every client shares: same origin as the page (the gateway
// serves both), the signed-in customer's token on every call.

import type { Interceptor } from "@connectrpc/connect";
import { createGrpcWebTransport } from "@connectrpc/connect-web";
import { token } from "../session";

const bearer: Interceptor = (next) => (req) => {
  const t = token();
  if (t) req.header.set("authorization", `Bearer ${t}`);
  return next(req);
};

export const transport = createGrpcWebTransport({ baseUrl: location.origin, interceptors: [bearer] });
