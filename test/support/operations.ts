import { graphql } from "../generated/index.ts";

export const PlaceOrder = graphql(`
  mutation PlaceOrder($input: PlaceOrderInput!) {
    placeOrder(input: $input) {
      eventId
      order { id status customerId requiredModules total { amount currency } }
    }
  }
`);

export const ConfirmPayment = graphql(`
  mutation ConfirmPayment($input: ConfirmPaymentInput!) {
    confirmPayment(input: $input) { eventId order { id status } }
  }
`);

export const CancelOrder = graphql(`
  mutation CancelOrder($input: CancelOrderInput!) {
    cancelOrder(input: $input) { eventId order { id status cancellationReason } }
  }
`);

export const OrderById = graphql(`
  query OrderById($id: ID!) {
    order(id: $id) {
      id
      status
      customerId
      contactEmail
      requiredModules
      cancellationReason
      total { amount currency }
      lines { sku kind quantity unitPrice { amount currency } }
      modules {
        __typename
        module
        state
        ... on FinanceState { invoiceState invoiceNumber }
      }
      events { id type occurredAt }
    }
  }
`);

export const Orders = graphql(`
  query Orders($first: Int, $after: String, $status: OrderStatus) {
    orders(first: $first, after: $after, status: $status) {
      edges { cursor node { id status } }
      pageInfo { hasNextPage endCursor }
    }
  }
`);

export const Products = graphql(`
  query Products { products { sku name kind price { amount currency } } }
`);

export const UpsertProduct = graphql(`
  mutation UpsertProduct($input: UpsertProductInput!) {
    upsertProduct(input: $input) { sku name kind price { amount currency } }
  }
`);

export const OrderStateChanged = graphql(`
  subscription OrderStateChanged($orderId: ID, $after: ID) {
    orderStateChanged(orderId: $orderId, after: $after) {
      eventId orderId from to occurredAt order { id status }
    }
  }
`);

export const OrdersPage = graphql(`
  query OrdersPage($first: Int, $after: String) {
    orders(first: $first, after: $after) {
      edges { cursor node { id status customerId createdAt } }
      pageInfo { hasNextPage endCursor }
    }
  }
`);
