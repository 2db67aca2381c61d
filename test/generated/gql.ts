/* eslint-disable */
import * as types from './graphql.ts';
import type { TypedDocumentNode as DocumentNode } from '@graphql-typed-document-node/core';

/**
 * Map of all GraphQL operations in the project.
 *
 * This map has several performance disadvantages:
 * 1. It is not tree-shakeable, so it will include all operations in the project.
 * 2. It is not minifiable, so the string of a GraphQL query will be multiple times inside the bundle.
 * 3. It does not support dead code elimination, so it will add unused operations.
 *
 * Therefore it is highly recommended to use the babel or swc plugin for production.
 * Learn more about it here: https://the-guild.dev/graphql/codegen/plugins/presets/preset-client#reducing-bundle-size
 */
type Documents = {
    "\n  query OrderDeadLetters($id: ID!) {\n    order(id: $id) { id deadLetters { consumer eventType error attempts replayedAt settledAt } }\n  }\n": typeof types.OrderDeadLettersDocument,
    "\n  query DeadLetters($consumer: String) {\n    deadLetters(consumer: $consumer) { id consumer eventId eventType orderId error attempts replayedAt }\n  }\n": typeof types.DeadLettersDocument,
    "\n  query ConsoleCounts { orderCounts { status count } }\n": typeof types.ConsoleCountsDocument,
    "\n  query ConsolePerSecond($seconds: Int) { ordersPerSecond(seconds: $seconds) { at placed completed } }\n": typeof types.ConsolePerSecondDocument,
    "\n  query ConsoleHealth($stuckAfterSeconds: Int) {\n    pipelineHealth(stuckAfterSeconds: $stuckAfterSeconds) {\n      outboxWaiting outboxLagSeconds deadLettersWaiting parkedEvents stuckAfterSeconds stuckOrderCount\n      consumers { consumer waiting inFlight }\n      stuckOrders { unmovedSeconds waitingFor order { id status } }\n    }\n  }\n": typeof types.ConsoleHealthDocument,
    "\n  query ConsoleFind($search: String!, $first: Int) { findOrders(search: $search, first: $first) { id } }\n": typeof types.ConsoleFindDocument,
    "\n  query ConsoleInspect($id: ID!) {\n    order(id: $id) {\n      status\n      events { type actor { kind id } }\n      notifications { kind status recipient sentAt }\n    }\n  }\n": typeof types.ConsoleInspectDocument,
    "\n  query ConsoleCustomerEvents($id: ID!) { order(id: $id) { events { type actor { kind id } } } }\n": typeof types.ConsoleCustomerEventsDocument,
    "\n  query ConsoleSettledLetters {\n    deadLetters(includeReplayed: true) { id orderId replayedAt settledAt }\n  }\n": typeof types.ConsoleSettledLettersDocument,
    "\n  query AllDeadLetters {\n    deadLetters(includeReplayed: true) { id consumer eventId orderId replayedAt settledAt }\n  }\n": typeof types.AllDeadLettersDocument,
    "\n  mutation ReplayDeadLetter($id: ID!) {\n    replayDeadLetter(id: $id) { id replayedAt }\n  }\n": typeof types.ReplayDeadLetterDocument,
    "\n  query ParkedEvents {\n    parkedEvents { id type orderId error payloadBytes parkedAt }\n  }\n": typeof types.ParkedEventsDocument,
    "\n  mutation RepublishParkedEvent($id: ID!) {\n    republishParkedEvent(id: $id)\n  }\n": typeof types.RepublishParkedEventDocument,
    "\n  mutation RepublishEvents($from: DateTime!, $to: DateTime!) {\n    republishEvents(from: $from, to: $to)\n  }\n": typeof types.RepublishEventsDocument,
    "\n  mutation PlaceOrder($input: PlaceOrderInput!) {\n    placeOrder(input: $input) {\n      eventId\n      order { id status customerId requiredModules total { amount currency } }\n    }\n  }\n": typeof types.PlaceOrderDocument,
    "\n  mutation ConfirmPayment($input: ConfirmPaymentInput!) {\n    confirmPayment(input: $input) { eventId order { id status } }\n  }\n": typeof types.ConfirmPaymentDocument,
    "\n  mutation CancelOrder($input: CancelOrderInput!) {\n    cancelOrder(input: $input) { eventId order { id status cancellationReason } }\n  }\n": typeof types.CancelOrderDocument,
    "\n  query OrderById($id: ID!) {\n    order(id: $id) {\n      id\n      status\n      customerId\n      contactEmail\n      requiredModules\n      cancellationReason\n      total { amount currency }\n      lines { sku kind quantity unitPrice { amount currency } }\n      modules {\n        __typename\n        module\n        state\n        ... on FinanceState { invoiceState invoiceNumber }\n      }\n      events { id type occurredAt }\n    }\n  }\n": typeof types.OrderByIdDocument,
    "\n  query Orders($first: Int, $after: String, $status: OrderStatus) {\n    orders(first: $first, after: $after, status: $status) {\n      edges { cursor node { id status } }\n      pageInfo { hasNextPage endCursor }\n    }\n  }\n": typeof types.OrdersDocument,
    "\n  query Products { products { sku name kind price { amount currency } } }\n": typeof types.ProductsDocument,
    "\n  mutation UpsertProduct($input: UpsertProductInput!) {\n    upsertProduct(input: $input) { sku name kind price { amount currency } }\n  }\n": typeof types.UpsertProductDocument,
    "\n  subscription OrderStateChanged($orderId: ID, $after: ID) {\n    orderStateChanged(orderId: $orderId, after: $after) {\n      eventId orderId from to occurredAt order { id status }\n    }\n  }\n": typeof types.OrderStateChangedDocument,
    "\n  query OrdersPage($first: Int, $after: String) {\n    orders(first: $first, after: $after) {\n      edges { cursor node { id status customerId createdAt } }\n      pageInfo { hasNextPage endCursor }\n    }\n  }\n": typeof types.OrdersPageDocument,
    "\n  mutation ReportShipment($input: ReportShipmentInput!) {\n    reportShipment(input: $input) { eventId order { id status } }\n  }\n": typeof types.ReportShipmentDocument,
    "\n  mutation ReportBooking($input: ReportBookingInput!) {\n    reportBooking(input: $input) { eventId order { id status } }\n  }\n": typeof types.ReportBookingDocument,
    "\n  query OrderSaga($id: ID!) {\n    order(id: $id) {\n      id\n      status\n      requiredModules\n      cancellationReason\n      modules { module state }\n      completion { waitingFor complete }\n      nextStatuses\n      events { type }\n    }\n  }\n": typeof types.OrderSagaDocument,
};
const documents: Documents = {
    "\n  query OrderDeadLetters($id: ID!) {\n    order(id: $id) { id deadLetters { consumer eventType error attempts replayedAt settledAt } }\n  }\n": types.OrderDeadLettersDocument,
    "\n  query DeadLetters($consumer: String) {\n    deadLetters(consumer: $consumer) { id consumer eventId eventType orderId error attempts replayedAt }\n  }\n": types.DeadLettersDocument,
    "\n  query ConsoleCounts { orderCounts { status count } }\n": types.ConsoleCountsDocument,
    "\n  query ConsolePerSecond($seconds: Int) { ordersPerSecond(seconds: $seconds) { at placed completed } }\n": types.ConsolePerSecondDocument,
    "\n  query ConsoleHealth($stuckAfterSeconds: Int) {\n    pipelineHealth(stuckAfterSeconds: $stuckAfterSeconds) {\n      outboxWaiting outboxLagSeconds deadLettersWaiting parkedEvents stuckAfterSeconds stuckOrderCount\n      consumers { consumer waiting inFlight }\n      stuckOrders { unmovedSeconds waitingFor order { id status } }\n    }\n  }\n": types.ConsoleHealthDocument,
    "\n  query ConsoleFind($search: String!, $first: Int) { findOrders(search: $search, first: $first) { id } }\n": types.ConsoleFindDocument,
    "\n  query ConsoleInspect($id: ID!) {\n    order(id: $id) {\n      status\n      events { type actor { kind id } }\n      notifications { kind status recipient sentAt }\n    }\n  }\n": types.ConsoleInspectDocument,
    "\n  query ConsoleCustomerEvents($id: ID!) { order(id: $id) { events { type actor { kind id } } } }\n": types.ConsoleCustomerEventsDocument,
    "\n  query ConsoleSettledLetters {\n    deadLetters(includeReplayed: true) { id orderId replayedAt settledAt }\n  }\n": types.ConsoleSettledLettersDocument,
    "\n  query AllDeadLetters {\n    deadLetters(includeReplayed: true) { id consumer eventId orderId replayedAt settledAt }\n  }\n": types.AllDeadLettersDocument,
    "\n  mutation ReplayDeadLetter($id: ID!) {\n    replayDeadLetter(id: $id) { id replayedAt }\n  }\n": types.ReplayDeadLetterDocument,
    "\n  query ParkedEvents {\n    parkedEvents { id type orderId error payloadBytes parkedAt }\n  }\n": types.ParkedEventsDocument,
    "\n  mutation RepublishParkedEvent($id: ID!) {\n    republishParkedEvent(id: $id)\n  }\n": types.RepublishParkedEventDocument,
    "\n  mutation RepublishEvents($from: DateTime!, $to: DateTime!) {\n    republishEvents(from: $from, to: $to)\n  }\n": types.RepublishEventsDocument,
    "\n  mutation PlaceOrder($input: PlaceOrderInput!) {\n    placeOrder(input: $input) {\n      eventId\n      order { id status customerId requiredModules total { amount currency } }\n    }\n  }\n": types.PlaceOrderDocument,
    "\n  mutation ConfirmPayment($input: ConfirmPaymentInput!) {\n    confirmPayment(input: $input) { eventId order { id status } }\n  }\n": types.ConfirmPaymentDocument,
    "\n  mutation CancelOrder($input: CancelOrderInput!) {\n    cancelOrder(input: $input) { eventId order { id status cancellationReason } }\n  }\n": types.CancelOrderDocument,
    "\n  query OrderById($id: ID!) {\n    order(id: $id) {\n      id\n      status\n      customerId\n      contactEmail\n      requiredModules\n      cancellationReason\n      total { amount currency }\n      lines { sku kind quantity unitPrice { amount currency } }\n      modules {\n        __typename\n        module\n        state\n        ... on FinanceState { invoiceState invoiceNumber }\n      }\n      events { id type occurredAt }\n    }\n  }\n": types.OrderByIdDocument,
    "\n  query Orders($first: Int, $after: String, $status: OrderStatus) {\n    orders(first: $first, after: $after, status: $status) {\n      edges { cursor node { id status } }\n      pageInfo { hasNextPage endCursor }\n    }\n  }\n": types.OrdersDocument,
    "\n  query Products { products { sku name kind price { amount currency } } }\n": types.ProductsDocument,
    "\n  mutation UpsertProduct($input: UpsertProductInput!) {\n    upsertProduct(input: $input) { sku name kind price { amount currency } }\n  }\n": types.UpsertProductDocument,
    "\n  subscription OrderStateChanged($orderId: ID, $after: ID) {\n    orderStateChanged(orderId: $orderId, after: $after) {\n      eventId orderId from to occurredAt order { id status }\n    }\n  }\n": types.OrderStateChangedDocument,
    "\n  query OrdersPage($first: Int, $after: String) {\n    orders(first: $first, after: $after) {\n      edges { cursor node { id status customerId createdAt } }\n      pageInfo { hasNextPage endCursor }\n    }\n  }\n": types.OrdersPageDocument,
    "\n  mutation ReportShipment($input: ReportShipmentInput!) {\n    reportShipment(input: $input) { eventId order { id status } }\n  }\n": types.ReportShipmentDocument,
    "\n  mutation ReportBooking($input: ReportBookingInput!) {\n    reportBooking(input: $input) { eventId order { id status } }\n  }\n": types.ReportBookingDocument,
    "\n  query OrderSaga($id: ID!) {\n    order(id: $id) {\n      id\n      status\n      requiredModules\n      cancellationReason\n      modules { module state }\n      completion { waitingFor complete }\n      nextStatuses\n      events { type }\n    }\n  }\n": types.OrderSagaDocument,
};

/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 *
 *
 * @example
 * ```ts
 * const query = graphql(`query GetUser($id: ID!) { user(id: $id) { name } }`);
 * ```
 *
 * The query argument is unknown!
 * Please regenerate the types.
 */
export function graphql(source: string): unknown;

/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "\n  query OrderDeadLetters($id: ID!) {\n    order(id: $id) { id deadLetters { consumer eventType error attempts replayedAt settledAt } }\n  }\n"): (typeof documents)["\n  query OrderDeadLetters($id: ID!) {\n    order(id: $id) { id deadLetters { consumer eventType error attempts replayedAt settledAt } }\n  }\n"];
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "\n  query DeadLetters($consumer: String) {\n    deadLetters(consumer: $consumer) { id consumer eventId eventType orderId error attempts replayedAt }\n  }\n"): (typeof documents)["\n  query DeadLetters($consumer: String) {\n    deadLetters(consumer: $consumer) { id consumer eventId eventType orderId error attempts replayedAt }\n  }\n"];
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "\n  query ConsoleCounts { orderCounts { status count } }\n"): (typeof documents)["\n  query ConsoleCounts { orderCounts { status count } }\n"];
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "\n  query ConsolePerSecond($seconds: Int) { ordersPerSecond(seconds: $seconds) { at placed completed } }\n"): (typeof documents)["\n  query ConsolePerSecond($seconds: Int) { ordersPerSecond(seconds: $seconds) { at placed completed } }\n"];
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "\n  query ConsoleHealth($stuckAfterSeconds: Int) {\n    pipelineHealth(stuckAfterSeconds: $stuckAfterSeconds) {\n      outboxWaiting outboxLagSeconds deadLettersWaiting parkedEvents stuckAfterSeconds stuckOrderCount\n      consumers { consumer waiting inFlight }\n      stuckOrders { unmovedSeconds waitingFor order { id status } }\n    }\n  }\n"): (typeof documents)["\n  query ConsoleHealth($stuckAfterSeconds: Int) {\n    pipelineHealth(stuckAfterSeconds: $stuckAfterSeconds) {\n      outboxWaiting outboxLagSeconds deadLettersWaiting parkedEvents stuckAfterSeconds stuckOrderCount\n      consumers { consumer waiting inFlight }\n      stuckOrders { unmovedSeconds waitingFor order { id status } }\n    }\n  }\n"];
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "\n  query ConsoleFind($search: String!, $first: Int) { findOrders(search: $search, first: $first) { id } }\n"): (typeof documents)["\n  query ConsoleFind($search: String!, $first: Int) { findOrders(search: $search, first: $first) { id } }\n"];
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "\n  query ConsoleInspect($id: ID!) {\n    order(id: $id) {\n      status\n      events { type actor { kind id } }\n      notifications { kind status recipient sentAt }\n    }\n  }\n"): (typeof documents)["\n  query ConsoleInspect($id: ID!) {\n    order(id: $id) {\n      status\n      events { type actor { kind id } }\n      notifications { kind status recipient sentAt }\n    }\n  }\n"];
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "\n  query ConsoleCustomerEvents($id: ID!) { order(id: $id) { events { type actor { kind id } } } }\n"): (typeof documents)["\n  query ConsoleCustomerEvents($id: ID!) { order(id: $id) { events { type actor { kind id } } } }\n"];
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "\n  query ConsoleSettledLetters {\n    deadLetters(includeReplayed: true) { id orderId replayedAt settledAt }\n  }\n"): (typeof documents)["\n  query ConsoleSettledLetters {\n    deadLetters(includeReplayed: true) { id orderId replayedAt settledAt }\n  }\n"];
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "\n  query AllDeadLetters {\n    deadLetters(includeReplayed: true) { id consumer eventId orderId replayedAt settledAt }\n  }\n"): (typeof documents)["\n  query AllDeadLetters {\n    deadLetters(includeReplayed: true) { id consumer eventId orderId replayedAt settledAt }\n  }\n"];
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "\n  mutation ReplayDeadLetter($id: ID!) {\n    replayDeadLetter(id: $id) { id replayedAt }\n  }\n"): (typeof documents)["\n  mutation ReplayDeadLetter($id: ID!) {\n    replayDeadLetter(id: $id) { id replayedAt }\n  }\n"];
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "\n  query ParkedEvents {\n    parkedEvents { id type orderId error payloadBytes parkedAt }\n  }\n"): (typeof documents)["\n  query ParkedEvents {\n    parkedEvents { id type orderId error payloadBytes parkedAt }\n  }\n"];
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "\n  mutation RepublishParkedEvent($id: ID!) {\n    republishParkedEvent(id: $id)\n  }\n"): (typeof documents)["\n  mutation RepublishParkedEvent($id: ID!) {\n    republishParkedEvent(id: $id)\n  }\n"];
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "\n  mutation RepublishEvents($from: DateTime!, $to: DateTime!) {\n    republishEvents(from: $from, to: $to)\n  }\n"): (typeof documents)["\n  mutation RepublishEvents($from: DateTime!, $to: DateTime!) {\n    republishEvents(from: $from, to: $to)\n  }\n"];
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "\n  mutation PlaceOrder($input: PlaceOrderInput!) {\n    placeOrder(input: $input) {\n      eventId\n      order { id status customerId requiredModules total { amount currency } }\n    }\n  }\n"): (typeof documents)["\n  mutation PlaceOrder($input: PlaceOrderInput!) {\n    placeOrder(input: $input) {\n      eventId\n      order { id status customerId requiredModules total { amount currency } }\n    }\n  }\n"];
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "\n  mutation ConfirmPayment($input: ConfirmPaymentInput!) {\n    confirmPayment(input: $input) { eventId order { id status } }\n  }\n"): (typeof documents)["\n  mutation ConfirmPayment($input: ConfirmPaymentInput!) {\n    confirmPayment(input: $input) { eventId order { id status } }\n  }\n"];
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "\n  mutation CancelOrder($input: CancelOrderInput!) {\n    cancelOrder(input: $input) { eventId order { id status cancellationReason } }\n  }\n"): (typeof documents)["\n  mutation CancelOrder($input: CancelOrderInput!) {\n    cancelOrder(input: $input) { eventId order { id status cancellationReason } }\n  }\n"];
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "\n  query OrderById($id: ID!) {\n    order(id: $id) {\n      id\n      status\n      customerId\n      contactEmail\n      requiredModules\n      cancellationReason\n      total { amount currency }\n      lines { sku kind quantity unitPrice { amount currency } }\n      modules {\n        __typename\n        module\n        state\n        ... on FinanceState { invoiceState invoiceNumber }\n      }\n      events { id type occurredAt }\n    }\n  }\n"): (typeof documents)["\n  query OrderById($id: ID!) {\n    order(id: $id) {\n      id\n      status\n      customerId\n      contactEmail\n      requiredModules\n      cancellationReason\n      total { amount currency }\n      lines { sku kind quantity unitPrice { amount currency } }\n      modules {\n        __typename\n        module\n        state\n        ... on FinanceState { invoiceState invoiceNumber }\n      }\n      events { id type occurredAt }\n    }\n  }\n"];
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "\n  query Orders($first: Int, $after: String, $status: OrderStatus) {\n    orders(first: $first, after: $after, status: $status) {\n      edges { cursor node { id status } }\n      pageInfo { hasNextPage endCursor }\n    }\n  }\n"): (typeof documents)["\n  query Orders($first: Int, $after: String, $status: OrderStatus) {\n    orders(first: $first, after: $after, status: $status) {\n      edges { cursor node { id status } }\n      pageInfo { hasNextPage endCursor }\n    }\n  }\n"];
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "\n  query Products { products { sku name kind price { amount currency } } }\n"): (typeof documents)["\n  query Products { products { sku name kind price { amount currency } } }\n"];
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "\n  mutation UpsertProduct($input: UpsertProductInput!) {\n    upsertProduct(input: $input) { sku name kind price { amount currency } }\n  }\n"): (typeof documents)["\n  mutation UpsertProduct($input: UpsertProductInput!) {\n    upsertProduct(input: $input) { sku name kind price { amount currency } }\n  }\n"];
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "\n  subscription OrderStateChanged($orderId: ID, $after: ID) {\n    orderStateChanged(orderId: $orderId, after: $after) {\n      eventId orderId from to occurredAt order { id status }\n    }\n  }\n"): (typeof documents)["\n  subscription OrderStateChanged($orderId: ID, $after: ID) {\n    orderStateChanged(orderId: $orderId, after: $after) {\n      eventId orderId from to occurredAt order { id status }\n    }\n  }\n"];
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "\n  query OrdersPage($first: Int, $after: String) {\n    orders(first: $first, after: $after) {\n      edges { cursor node { id status customerId createdAt } }\n      pageInfo { hasNextPage endCursor }\n    }\n  }\n"): (typeof documents)["\n  query OrdersPage($first: Int, $after: String) {\n    orders(first: $first, after: $after) {\n      edges { cursor node { id status customerId createdAt } }\n      pageInfo { hasNextPage endCursor }\n    }\n  }\n"];
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "\n  mutation ReportShipment($input: ReportShipmentInput!) {\n    reportShipment(input: $input) { eventId order { id status } }\n  }\n"): (typeof documents)["\n  mutation ReportShipment($input: ReportShipmentInput!) {\n    reportShipment(input: $input) { eventId order { id status } }\n  }\n"];
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "\n  mutation ReportBooking($input: ReportBookingInput!) {\n    reportBooking(input: $input) { eventId order { id status } }\n  }\n"): (typeof documents)["\n  mutation ReportBooking($input: ReportBookingInput!) {\n    reportBooking(input: $input) { eventId order { id status } }\n  }\n"];
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "\n  query OrderSaga($id: ID!) {\n    order(id: $id) {\n      id\n      status\n      requiredModules\n      cancellationReason\n      modules { module state }\n      completion { waitingFor complete }\n      nextStatuses\n      events { type }\n    }\n  }\n"): (typeof documents)["\n  query OrderSaga($id: ID!) {\n    order(id: $id) {\n      id\n      status\n      requiredModules\n      cancellationReason\n      modules { module state }\n      completion { waitingFor complete }\n      nextStatuses\n      events { type }\n    }\n  }\n"];

export function graphql(source: string) {
  return (documents as any)[source] ?? {};
}

export type DocumentType<TDocumentNode extends DocumentNode<any, any>> = TDocumentNode extends DocumentNode<  infer TType,  any>  ? TType  : never;