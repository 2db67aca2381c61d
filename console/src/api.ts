import { type Client, createClient } from "graphql-ws";

/** A GraphQL error as the gateway answers it, with the contract's code. */
export class ApiError extends Error {
  constructor(
    message: string,
    readonly code: string | undefined,
  ) {
    super(message);
  }
}

interface GraphQLError {
  message: string;
  extensions?: { code?: string };
}

/** The gateway's GraphQL, same origin, with the admin's token; the token never goes into a URL. */
export class Api {
  private ws?: Client;

  constructor(private readonly token: string) {}

  async query<T>(query: string, variables: Record<string, unknown> = {}): Promise<T> {
    const response = await fetch("/graphql", {
      method: "POST",
      headers: {
        "content-type": "application/json",
        // application/json: GraphQL errors come back as 200 with `errors`, not as a failed request.
        accept: "application/json",
        authorization: `Bearer ${this.token}`,
      },
      body: JSON.stringify({ query, variables }),
    });
    const body = (await response.json()) as { data?: T; errors?: GraphQLError[] };
    const [error] = body.errors ?? [];
    if (error) throw new ApiError(error.message, error.extensions?.code);
    if (!body.data) throw new ApiError(`the gateway answered ${response.status} without data`, undefined);
    return body.data;
  }

  /** A live subscription over graphql-ws; answers how to stop it. */
  subscribe<T>(
    query: string,
    handlers: { next(data: T): void; error(error: unknown): void; connected(up: boolean): void },
  ): () => void {
    this.ws ??= createClient({
      url: `${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/graphql`,
      connectionParams: { authorization: `Bearer ${this.token}` },
      retryAttempts: Number.POSITIVE_INFINITY,
      shouldRetry: () => true,
      on: {
        connected: () => handlers.connected(true),
        closed: () => handlers.connected(false),
      },
    });
    return this.ws.subscribe<T>(
      { query },
      {
        next: (result) => {
          if (result.data) handlers.next(result.data as T);
          else if (result.errors?.length) handlers.error(new ApiError(result.errors[0]!.message, undefined));
        },
        error: handlers.error,
        complete: () => {},
      },
    );
  }

  close(): void {
    void this.ws?.dispose();
    this.ws = undefined;
  }
}
